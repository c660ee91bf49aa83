import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, getJson } from "../../api.js";

/** A resource loaded from the API: its data once loaded, the error message of the last failure. */
export interface JsonResource<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  /** The HTTP status of the last failure, when the server answered one (401: no key, 403: not admin). */
  readonly status: number | undefined;
  /** Loads it again now (after a change the page made). */
  reload(): void;
}

/**
 * GETs `path` (again whenever it changes) and, with `refreshMs`, every `refreshMs` while the
 * page is visible: a hidden tab stops polling and refreshes as soon as it is shown again.
 * `path` undefined loads nothing (a section waiting for something else).
 */
export function useJson<T>(path: string | undefined, refreshMs?: number): JsonResource<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<{ message: string; status?: number }>();
  const [generation, setGeneration] = useState(0);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);

  useEffect(() => {
    if (path === undefined) return;
    const controller = new AbortController();
    getJson<T>(path, controller.signal).then(
      (value) => { setData(value); setError(undefined); },
      (failure: unknown) => {
        if (controller.signal.aborted) return;
        setError({ message: failure instanceof Error ? failure.message : String(failure), ...(failure instanceof ApiError ? { status: failure.status } : {}) });
      },
    );
    return () => controller.abort();
  }, [path, generation]);

  useEffect(() => {
    if (refreshMs === undefined) return;
    let timer: ReturnType<typeof setInterval> | undefined;
    const visible = () => document.visibilityState === "visible";
    const poll = () => {
      clearInterval(timer);
      timer = visible() ? setInterval(reload, refreshMs) : undefined;
    };
    const onVisibilityChange = () => {
      poll();
      if (visible()) reload();
    };
    poll();
    document.addEventListener("visibilitychange", onVisibilityChange);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisibilityChange);
    };
  }, [refreshMs, reload]);

  return { data, error: error?.message, status: error?.status, reload };
}
