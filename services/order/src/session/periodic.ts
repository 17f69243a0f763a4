/**
 * Run `task` every `intervalMs`, never two at once (a slow run is not overlapped by the next tick); failures go to
 * `onError` and the next tick runs as usual. Returns a stopper that waits for a run in progress. The timer does not
 * keep the process alive.
 */
export function every(
  intervalMs: number,
  task: () => Promise<void>,
  onError: (err: unknown) => void,
): () => Promise<void> {
  let stopped = false;
  let busy = false;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped || busy) return;
    busy = true;
    running = task()
      .catch(onError)
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
