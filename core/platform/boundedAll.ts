/**
 * Runs `fn` over `items` with at most `concurrency` calls in flight and stops
 * starting new ones at `deadlineMs`; a call still running then is not waited
 * for. Returns what answered, by index. For reads that fan out to one Durable
 * Object per row (a scrape asking every cluster's link): a fleet of thousands of
 * objects must not turn one request into thousands of simultaneous wake-ups or
 * an answer that comes after the caller (Prometheus: 10 s) has given up.
 */
export async function settleWithin<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  opts: { concurrency: number; deadlineMs: number },
): Promise<Map<number, R>> {
  const done = new Map<number, R>();
  if (items.length === 0) return done;
  let timer: ReturnType<typeof setTimeout> | undefined = undefined;
  let expired = false;
  const deadline = new Promise<void>((resolve) => { timer = setTimeout(() => { expired = true; resolve(); }, opts.deadlineMs); });
  // The clock as well as the timer: when the calls themselves keep the isolate busy (each wakes an
  // object on the same thread, as locally), workerd runs the timer late, but each answer is I/O and
  // moves Date.now().
  const endsAt = Date.now() + opts.deadlineMs;
  let next = 0;
  const lane = async () => {
    while (!expired && Date.now() < endsAt && next < items.length) {
      const i = next++;
      // A call past the deadline is dropped by the race; one that fails is simply not in the result.
      await Promise.race([fn(items[i]!).then((r) => { if (!expired) done.set(i, r); }, () => {}), deadline]);
    }
  };
  await Promise.race([Promise.all(Array.from({ length: Math.min(opts.concurrency, items.length) }, lane)), deadline]);
  if (timer !== undefined) clearTimeout(timer);
  expired = true;
  return done;
}
