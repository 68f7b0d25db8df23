// The messages between the file contents check page (files-check.ts) and its worker
// (files-check-worker.ts).

/**
 * What the page asks the worker: one check, on an OPFS database of its own name (removed
 * before the check and after it), with the bytes of the contents it attaches.
 */
export type CheckRequest =
  | {
      type: "check";
      check: "collect";
      id: number;
      name: string;
      /** The content whose photo stays. */
      kept: number[];
      /** The content whose photo is deleted. */
      dropped: number[];
    }
  | {
      type: "check";
      check: "locked";
      id: number;
      name: string;
      /** The content of a photo never committed, whose file is held open while it is collected. */
      content: number[];
    };

/** What the `collect` check saw. Paths are those of the files under `ferry-files/<name>/`, sorted. */
export interface CollectResult {
  type: "check-done";
  check: "collect";
  id: number;
  /** The `ContentHash` each photo got from attachFile. */
  keptHash: string;
  droppedHash: string;
  /** The files in OPFS once both photos were committed. */
  afterCommit: string[];
  /** The dropped content read back before its photo was deleted (bytes, or null). */
  droppedBeforeDelete: number[] | null;
  /** What `db.delete` of the dropped photo answered. */
  deletion: string;
  /** The ids of the photos the database holds after the deletion. */
  photosAfterDelete: string[];
  /** What `collectFiles(24 h)` removed, and the files left. */
  removedWithinGrace: number;
  afterGrace: string[];
  /** What `collectFiles(0)` removed, and the files left. */
  removed: number;
  afterCollect: string[];
  /** The kept photo's content read back (found again by id), and the dropped content (null once gone). */
  keptRead: number[] | null;
  droppedRead: number[] | null;
  /** After the database is closed and opened again: the kept content read back, what `collectFiles(0)` removes, and the files. */
  keptReadAfterReopen: number[] | null;
  removedAfterReopen: number;
  afterReopen: string[];
}

/** What the `locked` check saw. */
export interface LockedResult {
  type: "check-done";
  check: "locked";
  id: number;
  hash: string;
  /** What `collectFiles(0)` gave while the content's file was open: its count, or its error. */
  whileOpen: { removed: number } | { kind: string; message: string };
  afterOpen: string[];
  /** What `collectFiles(0)` removed once the file was closed, and the files left. */
  removedAfterClose: number;
  afterClose: string[];
}

export type CheckResult = CollectResult | LockedResult;

/** A check that failed, and why. */
export interface CheckFailure {
  type: "check-failed";
  id: number;
  message: string;
}

export type CheckAnswer = CheckResult | CheckFailure;
