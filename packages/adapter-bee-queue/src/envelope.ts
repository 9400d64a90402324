import { SuperSpreaderError } from "@superspreader/core";
import type { JobData, QueueJob } from "@superspreader/core";
import { describeValue } from "@superspreader/core/adapter";

/**
 * What the adapter stores as a Bee-Queue job's data.
 *
 * Bee-Queue keeps only the *remaining* retries (`options.retries`, decremented on
 * every failure), so the original `attempts` travels with the payload: the
 * worker needs both to tell the runtime which attempt this is and whether it is
 * the last one.
 */
export interface StoredJob {
  /** Format marker; lets a worker refuse jobs it did not write. */
  readonly superspreader: 1;
  /** `QueueJob.attempts` as enqueued. */
  readonly attempts: number;
  /** `QueueJob.data`, unchanged. */
  readonly data: JobData;
}

/** Wraps a job's payload for storage. */
export function toStoredJob(job: QueueJob): StoredJob {
  return { superspreader: 1, attempts: job.attempts, data: job.data };
}

/** Which delivery this is: `attempt` counts from 1, `maxAttempts` is the job's `attempts`. */
export interface Delivery {
  readonly data: JobData;
  readonly attempt: number;
  readonly maxAttempts: number;
}

/**
 * Reads a delivered Bee-Queue job. `remainingRetries` is the job's
 * `options.retries` at delivery time. A run cut short by a crash (a stalled job)
 * does not decrement it, so such a run repeats the same attempt number.
 */
export function readDelivery(jobId: string, stored: unknown, remainingRetries: unknown): Delivery {
  const candidate = stored as Partial<StoredJob> | null;
  if (
    typeof candidate !== "object" ||
    candidate === null ||
    candidate.superspreader !== 1 ||
    !Number.isSafeInteger(candidate.attempts) ||
    (candidate.attempts ?? 0) < 1 ||
    typeof candidate.data !== "object" ||
    candidate.data === null
  ) {
    throw new SuperSpreaderError(
      "CORRUPT_DATA",
      `Bee-Queue job ${describeValue(jobId)} was not written by createBeeQueueJobQueue (data ${describeValue(stored)}); ` +
        "give superspreader a queue name of its own",
    );
  }
  const maxAttempts = candidate.attempts as number;
  const remaining = typeof remainingRetries === "number" && Number.isFinite(remainingRetries) ? remainingRetries : 0;
  const attempt = Math.min(maxAttempts, Math.max(1, maxAttempts - remaining));
  return { data: candidate.data, attempt, maxAttempts };
}
