import { Environment, type Template } from "@huggingface/jinja";
import { ChatTemplateInterpreter } from "./chat-template-interpreter.js";

/** What a template's `raise_exception(message)` throws: the template refuses the conversation. */
export class TemplateRaisedError extends Error {
  override readonly name = "TemplateRaisedError";
}

/**
 * A map that remembers which keys were read. The capability probes below put every object of a
 * probe's input behind one, so they can tell what a template *uses*, as llama.cpp's Jinja engine
 * marks values used (`common/jinja/caps.cpp`): reading a key marks it; iterating (items(),
 * tojson, namespace()) marks every key. Printing a value does not (ChatTemplateInterpreter
 * prints through Map.prototype), as in llama.cpp.
 */
export class UsageMap<V> extends Map<string, V> {
  readonly used = new Set<string>();

  override get(key: string): V | undefined {
    this.used.add(key);
    return super.get(key);
  }

  override entries(): MapIterator<[string, V]> {
    this.#useAll();
    return super.entries();
  }

  override values(): MapIterator<V> {
    this.#useAll();
    return super.values();
  }

  override [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  override forEach(callback: (value: V, key: string, map: Map<string, V>) => void, thisArg?: unknown): void {
    this.#useAll();
    super.forEach(callback, thisArg);
  }

  #useAll(): void {
    for (const key of super.keys()) this.used.add(key);
  }
}

/** The runtime value @huggingface/jinja made of an input: objects hold a Map, arrays an array. */
interface RuntimeValue {
  value: unknown;
}

/** Puts every object inside `value` behind a UsageMap, in place. */
function trackUsage(value: RuntimeValue): void {
  if (value.value instanceof Map) {
    const tracked = new UsageMap<RuntimeValue>(value.value as Map<string, RuntimeValue>);
    value.value = tracked;
    for (const child of Map.prototype.values.call(tracked) as Iterable<RuntimeValue>) trackUsage(child);
  } else if (Array.isArray(value.value)) {
    for (const child of value.value as RuntimeValue[]) trackUsage(child);
  }
}

/** Read access to a probe's input after the render: which keys the template used. */
export class UsageReport {
  readonly #variables: UsageMap<RuntimeValue>;
  /** The globals as given: a template may `set` a global anew (`messages = messages[1:]`). */
  readonly #given: Map<string, RuntimeValue>;

  constructor(variables: UsageMap<RuntimeValue>) {
    this.#variables = variables;
    this.#given = new Map(Map.prototype.entries.call(variables) as Iterable<[string, RuntimeValue]>);
  }

  /**
   * Whether the template read the value at `path`: a global's name, then keys and indexes, e.g.
   * `["messages", 0, "content"]`. An array element counts through its keys, not by itself.
   */
  used(path: readonly [string, ...(string | number)[]]): boolean {
    if (path.length === 1) return this.#variables.used.has(path[0]);
    let map: Map<string, RuntimeValue> = this.#given;
    for (let index = 0; ; index++) {
      const key = path[index] as string;
      if (!Map.prototype.has.call(map, key)) return false;
      if (index === path.length - 1) return map instanceof UsageMap && map.used.has(key);
      let value = Map.prototype.get.call(map, key) as RuntimeValue;
      while (typeof path[index + 1] === "number") {
        const element = Array.isArray(value.value) ? (value.value as RuntimeValue[])[path[index + 1] as number] : undefined;
        if (!element) return false;
        value = element;
        index++;
      }
      if (index === path.length - 1 || !(value.value instanceof Map)) return false;
      map = value.value as Map<string, RuntimeValue>;
    }
  }
}

/** What one render gets besides the template's own variables. */
export interface RenderEnvironmentOptions {
  /** The time `strftime_now()` formats (llama.cpp's `inputs.now`). */
  readonly now: Date;
  /**
   * Record which inputs the template reads (for the capability probes): called before the
   * render with a live report, which stays readable when the render throws part way.
   */
  readonly trackUsage?: (usage: UsageReport) => void;
}

/**
 * Renders a parsed template with `variables` and the globals real chat templates call:
 * `raise_exception` (throws TemplateRaisedError), `strftime_now` (at `options.now`), `range`,
 * `namespace`, and the constants `true`/`false`/`none` in both cases. The Jinja options are
 * those of transformers and llama.cpp (`trim_blocks`, `lstrip_blocks`), fixed by Template.
 * @throws TemplateRaisedError when the template calls raise_exception
 * @throws Error when the template fails for another reason (an unsupported filter, a type error)
 */
export function renderTemplate(template: Template, variables: Readonly<Record<string, unknown>>, options: RenderEnvironmentOptions): string {
  const environment = new Environment();
  environment.set("false", false);
  environment.set("true", true);
  environment.set("none", null);
  environment.set("False", false);
  environment.set("True", true);
  environment.set("None", null);
  environment.set("raise_exception", (message: unknown) => {
    throw new TemplateRaisedError(String(message));
  });
  environment.set("range", range);
  environment.set("strftime_now", (format: unknown) => strftime(options.now, String(format)));
  for (const [name, value] of Object.entries(variables)) {
    if (value === undefined) continue;
    // Environment.set refuses a name twice; a scratch environment converts, setVariable overrides.
    const runtime = environment.setVariable(name, new Environment().set("value", value));
    if (options.trackUsage) trackUsage(runtime as RuntimeValue);
  }
  if (options.trackUsage) {
    const tracked = new UsageMap(environment.variables);
    environment.variables = tracked;
    options.trackUsage(new UsageReport(tracked as unknown as UsageMap<RuntimeValue>));
  }
  return String(new ChatTemplateInterpreter(environment).run(template.parsed).value);
}

/** Python's `range()`, which @huggingface/jinja keeps to itself. */
function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error("range() arg 3 must not be zero");
  const values: number[] = [];
  for (let value = start; step > 0 ? value < stop : value > stop; value += step) values.push(value);
  return values;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/**
 * C's `strftime` in the C locale, at local time, as llama.cpp's `strftime_now` and its
 * `date_string` use it (@huggingface/jinja's follows the process locale, so "Dez" in German).
 * Supports the conversions templates use, glibc's `%-d` style unpadded forms included.
 */
export function strftime(date: Date, format: string): string {
  const pad = (value: number, width = 2) => String(value).padStart(width, "0");
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const dayOfYear = Math.round((new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime() - startOfYear.getTime()) / 86_400_000) + 1;
  const hour12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  const conversions: Record<string, () => string> = {
    Y: () => String(date.getFullYear()),
    y: () => pad(date.getFullYear() % 100),
    m: () => pad(date.getMonth() + 1),
    d: () => pad(date.getDate()),
    e: () => String(date.getDate()).padStart(2, " "),
    b: () => MONTHS[date.getMonth()]!.slice(0, 3),
    h: () => MONTHS[date.getMonth()]!.slice(0, 3),
    B: () => MONTHS[date.getMonth()]!,
    a: () => DAYS[date.getDay()]!.slice(0, 3),
    A: () => DAYS[date.getDay()]!,
    H: () => pad(date.getHours()),
    I: () => pad(hour12),
    M: () => pad(date.getMinutes()),
    S: () => pad(date.getSeconds()),
    p: () => (date.getHours() < 12 ? "AM" : "PM"),
    j: () => pad(dayOfYear, 3),
    F: () => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
    T: () => `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`,
    n: () => "\n",
    t: () => "\t",
    "%": () => "%",
  };
  return format.replace(/%(-?)([A-Za-z%])/g, (whole, unpadded: string, letter: string) => {
    const convert = conversions[letter];
    if (!convert) return whole;
    const text = convert();
    return unpadded ? text.replace(/^[0 ]+(?=.)/, "") : text;
  });
}
