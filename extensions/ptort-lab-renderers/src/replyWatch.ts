/**
 * The explorer's watch over a request in flight: the view must never wait forever for a reply. The kernel answers
 * an interrupted run too (with a message), but a reply can still be lost; and after a kernel restart nothing sent
 * arrives at all. A request is given up on when the kernel has been idle for a few checks in a row without
 * answering it (its reply arrives before the kernel goes idle), or, in a host that does not show the kernel's
 * status, after LOST_AFTER_MS. A kernel restarting or dead means the view can never run again.
 */

/** How often a request in flight is checked on (ms). */
export const WATCH_MS = 1000;
/** A request is lost when the kernel has been idle this many checks in a row without answering it. */
export const IDLE_CHECKS = 3;
/** Without the kernel's status to look at, a request unanswered this long (ms) is given up on. */
export const LOST_AFTER_MS = 120000;
/** The running indicator counts seconds after this long (ms). */
export const SLOW_MS = 5000;
const GONE_STATUSES = new Set(['restarting', 'autorestarting', 'dead']);

export const LOST_MESSAGE =
  'no reply from the kernel (was it interrupted?): showing the last run that finished; move a slider to run again';
export const RESTARTED_MESSAGE =
  'the kernel restarted: re-run this cell to use the explorer again (the controls are off; the timelines show ' +
  'the last run)';

/** The kernel's status ("idle", "busy", "restarting", ...) from a widget manager that has one (JupyterLab's and
 * Notebook 7's have the kernel), else null. */
export function kernelStatus(widgetManager: unknown): string | null {
  const manager = widgetManager as { kernel?: { status?: unknown } | null } | undefined;
  const status = manager && manager.kernel ? manager.kernel.status : undefined;
  return typeof status === 'string' ? status : null;
}

export interface WatchEvents {
  /** The request will get no reply: stop waiting for it. */
  lost(): void;
  /** The kernel restarted or stopped. */
  gone(): void;
  /** Still running after SLOW_MS: the seconds waited so far. */
  slow(seconds: number): void;
}

export class ReplyWatch {
  constructor(status: () => string | null, on: WatchEvents) {
    this._status = status;
    this._on = on;
  }

  /** Whether the kernel is known to be restarting or gone. */
  kernelGone(): boolean {
    return GONE_STATUSES.has(this._status() ?? '');
  }

  /** A request was sent: watch it until stop(). */
  start(): void {
    this._sentAt = Date.now();
    this._idleChecks = 0;
    if (this._timer === null) {
      this._timer = setInterval(() => this._check(), WATCH_MS) as unknown as number;
    }
  }

  /** Its reply came (or the view gave up on it). */
  stop(): void {
    if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _check(): void {
    const waited = Date.now() - this._sentAt;
    const status = this._status();
    if (status !== null && GONE_STATUSES.has(status)) {
      this.stop();
      this._on.gone();
      return;
    }
    // A kernel busy (with this request, or with a cell that runs first) is not idle.
    this._idleChecks = status === 'idle' ? this._idleChecks + 1 : 0;
    if (this._idleChecks >= IDLE_CHECKS || (status === null && waited >= LOST_AFTER_MS)) {
      this.stop();
      this._on.lost();
      return;
    }
    if (waited >= SLOW_MS) {
      this._on.slow(Math.round(waited / 1000));
    }
  }

  private _status: () => string | null;
  private _on: WatchEvents;
  private _sentAt = 0;
  private _idleChecks = 0;
  private _timer: number | null = null;
}
