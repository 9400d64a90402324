import type { EnqueueResult, JobQueue, QueueCounts, QueueJob } from "@superspreader/core";

/** Options of {@link createKindRoutedJobQueue}. */
export interface KindRoutedJobQueueOptions {
  /** Where tick jobs go (the scheduler's self-rescheduling chain). */
  ticks: JobQueue;
  /** Where batch jobs go. */
  batches: JobQueue;
}

/**
 * A JobQueue that puts ticks and batches on two queues, so one process can run the
 * ticks alone (a worker on `ticks`) while others run the batches. Closing it closes both.
 *
 * @example
 * ```ts
 * const queue = createKindRoutedJobQueue({
 *   ticks: createBullMQJobQueue({ connection, queueName: "bf-ticks" }),
 *   batches: createBullMQJobQueue({ connection, queueName: "bf-batches" }),
 * });
 * ```
 */
export function createKindRoutedJobQueue(options: KindRoutedJobQueueOptions): JobQueue {
  const { ticks, batches } = options;
  const sum = (a: EnqueueResult, b: EnqueueResult): EnqueueResult => ({ added: a.added + b.added, duplicates: a.duplicates + b.duplicates });
  const none: EnqueueResult = { added: 0, duplicates: 0 };
  return {
    capabilities: { priorities: ticks.capabilities.priorities && batches.capabilities.priorities },
    async enqueue(jobs: readonly QueueJob[]): Promise<EnqueueResult> {
      // The runtime lists a cycle's batches first and the next tick last, so that a stored
      // tick implies stored batches; storing the batch queue's share first keeps that true.
      const batchJobs = jobs.filter((job) => job.data.kind === "batch");
      const tickJobs = jobs.filter((job) => job.data.kind === "tick");
      const first = batchJobs.length > 0 ? await batches.enqueue(batchJobs) : none;
      const second = tickJobs.length > 0 ? await ticks.enqueue(tickJobs) : none;
      return sum(first, second);
    },
    async counts(): Promise<QueueCounts> {
      const [a, b] = await Promise.all([ticks.counts(), batches.counts()]);
      return { waiting: a.waiting + b.waiting, delayed: a.delayed + b.delayed, active: a.active + b.active, failed: a.failed + b.failed };
    },
    async close(): Promise<void> {
      await Promise.all([ticks.close(), batches.close()]);
    },
  };
}
