import DOMPurify from "dompurify";
import MarkdownIt from "markdown-it";

/**
 * Model output as markdown. markdown-it with `html: false` escapes every tag in the text (so
 * `<script>` or `<img onerror>` from a model arrive as text), refuses `javascript:` links, and
 * DOMPurify then sanitises the result as a second line of defence.
 */
const markdown = new MarkdownIt({ html: false, linkify: false, breaks: true });

// Links open outside the app and tell the target nothing.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

/** Safe HTML for a model's markdown. */
export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(markdown.render(text), { USE_PROFILES: { html: true } });
}
