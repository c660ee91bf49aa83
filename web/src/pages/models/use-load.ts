import { useCallback, useEffect, useState } from "preact/hooks";

/** What {@link useLoad} answers: the data once loaded, the error if loading failed, and a reload. */
export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload(): void;
}

/**
 * Loads data for a page when `key` changes (and on `reload`), keeping the last data while a
 * reload runs so the page does not flash; an answer for an older key is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (value) => { if (current) { setData(value); setError(undefined); } },
      (caught: unknown) => { if (current) setError((caught as Error).message); },
    );
    return () => { current = false; };
    // `load` is a new closure each render; `key` and `generation` say when to call it again.
  }, [key, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { data, error, reload };
}
