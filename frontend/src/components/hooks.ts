import { useCallback, useEffect, useState, type Dispatch, type SetStateAction } from "react";

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  /** A request is not answered yet (the last data stays shown meanwhile). */
  loading: boolean;
  /** Loads again, e.g. after a change made elsewhere. */
  reload: () => void;
  setData: Dispatch<SetStateAction<T | null>>;
}

/**
 * Loads with `load`, and again whenever `load` changes (memoise it with useCallback on what it reads, so
 * the lint checks that list) or reload() is called; an answer to an earlier request is dropped.
 */
export function useLoad<T>(load: () => Promise<T>): Loaded<T> {
  // Each request is a new object: the effect runs once per request, and loading means "not answered yet".
  const [request, setRequest] = useState(() => ({ load }));
  if (request.load !== load) setRequest({ load });
  const [answered, setAnswered] = useState<object | null>(null);
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let current = true;
    request.load().then(
      (result) => {
        if (!current) return;
        setData(result);
        setError(null);
        setAnswered(request);
      },
      (e: unknown) => {
        if (!current) return;
        setError(e);
        setAnswered(request);
      },
    );
    return () => {
      current = false;
    };
  }, [request]);

  const reload = useCallback(() => setRequest((r) => ({ load: r.load })), []);
  return { data, error, loading: answered !== request, reload, setData };
}

/** A value that follows `value` after it has been still for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [current, setCurrent] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setCurrent(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return current;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface Paged<T> {
  items: T[];
  error: unknown;
  loading: boolean;
  /** The list goes on: loadMore() appends its next page. */
  hasMore: boolean;
  loadMore: () => Promise<void>;
  loadingMore: boolean;
  moreError: unknown;
  reload: () => void;
  /** Changes the items shown (a row created, changed or deleted here). */
  setItems: (update: (items: T[]) => T[]) => void;
}

/**
 * A list read page by page: `load(cursor)` answers one page (null: the first). The first page is
 * loaded again whenever `load` changes (a new search); a page answered for an earlier list is dropped.
 */
export function usePaged<T>(load: (cursor: string | null) => Promise<Page<T>>): Paged<T> {
  const first = useLoad(useCallback(() => load(null), [load]));
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);
  const cursor = first.data?.next_cursor ?? null;
  const setData = first.setData;

  const loadMore = useCallback(async () => {
    setLoadingMore(true);
    setMoreError(null);
    try {
      const page = await load(cursor);
      setData((old) => (old && (old.next_cursor ?? null) === cursor
        ? { items: [...old.items, ...page.items], next_cursor: page.next_cursor ?? null } : old));
    } catch (e) {
      setMoreError(e);
    } finally {
      setLoadingMore(false);
    }
  }, [load, cursor, setData]);

  const setItems = useCallback(
    (update: (items: T[]) => T[]) => setData((page) => (page ? { ...page, items: update(page.items) } : page)),
    [setData],
  );
  return {
    items: first.data?.items ?? [], error: first.error, loading: first.loading, hasMore: cursor !== null,
    loadMore, loadingMore, moreError, reload: first.reload, setItems,
  };
}
