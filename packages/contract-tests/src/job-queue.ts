import type { BatchJobData, JobContext, JobOutcome, JobProcessor, JobQueue, QueueJob } from "@superspreader/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { randomSuffix, waitUntil } from "./util.js";

/** What a JobQueue factory returns. */
export interface JobQueueHarness {
  /** A fresh queue (its own queue name or prefix). */
  queue: JobQueue;
  /**
   * Starts consuming the queue with `processor` (the adapter's worker runner).
   * Configure retries to wait at most ~200 ms so the suite stays fast.
   */
  startWorker(processor: JobProcessor): Promise<{ stop(): Promise<void> }>;
  cleanup?: () => Promise<void>;
}

/** Opt-outs, each for a documented lack of the queue. */
export interface JobQueueContractOptions {
  /** The queue has no priorities (e.g. Bee-Queue): skip the priority test. */
  skipPriorities?: boolean;
}

interface Delivery {
  data: BatchJobData;
  context: Omit<JobContext, "signal">;
  at: number;
}

function batch(id: string, runAt: number, extra: Partial<QueueJob> = {}, beginId = "1"): QueueJob {
  return {
    id,
    runAt,
    attempts: 1,
    data: { kind: "batch", backfill: "contract", runId: "r1", cycle: 0, beginId, endId: "18446744073709551615" },
    ...extra,
  };
}

/**
 * The JobQueue conformance suite: dedup by id, run times, attempts, counts,
 * validation. Call it at the top level of a test file.
 *
 * @example
 * ```ts
 * import { describeJobQueueContract } from "@superspreader/contract-tests";
 * describeJobQueueContract("bullmq", async () => {
 *   const connection = new Redis(process.env.SUPERSPREADER_REDIS_URL!, { maxRetriesPerRequest: null });
 *   const queueName = `contract-${Math.random().toString(36).slice(2)}`;
 *   return {
 *     queue: createBullMQJobQueue({ connection, queueName }),
 *     startWorker: async (spreader) => runBullMQWorker({ spreader, connection, queueName }),
 *     cleanup: async () => void connection.disconnect(),
 *   };
 * });
 * ```
 */
export function describeJobQueueContract(
  name: string,
  factory: () => Promise<JobQueueHarness>,
  options: JobQueueContractOptions = {},
): void {
  describe(`JobQueue contract: ${name}`, () => {
    let harness: JobQueueHarness;
    let queue: JobQueue;
    let worker: { stop(): Promise<void> } | undefined;
    let deliveries: Delivery[];
    let behaviour: (d: Delivery) => JobOutcome | Promise<JobOutcome>;
    let prefix: string;

    const start = async () => {
      worker = await harness.startWorker({
        watchdog: async () => [],
        perform: async (data, context) => {
          const d: Delivery = {
            data: data as BatchJobData,
            context: { attempt: context.attempt, maxAttempts: context.maxAttempts },
            at: Date.now(),
          };
          deliveries.push(d);
          return behaviour(d);
        },
      });
    };

    beforeEach(async () => {
      harness = await factory();
      queue = harness.queue;
      deliveries = [];
      behaviour = () => "done";
      worker = undefined;
      prefix = `j${randomSuffix()}`;
    });
    afterEach(async () => {
      await worker?.stop();
      await queue.close();
      await harness.cleanup?.();
    });

    it("stores new jobs and skips ids already present, keeping the first data", async () => {
      const now = Date.now();
      expect(await queue.enqueue([batch(`${prefix}-a`, now, {}, "1"), batch(`${prefix}-b`, now, {}, "2")])).toEqual({ added: 2, duplicates: 0 });
      expect(await queue.enqueue([batch(`${prefix}-a`, now, {}, "999"), batch(`${prefix}-c`, now, {}, "3")])).toEqual({
        added: 1,
        duplicates: 1,
      });
      await start();
      await waitUntil("three deliveries", () => deliveries.length >= 3);
      // Give a wrongly stored duplicate the chance to show up before asserting it did not.
      await new Promise((r) => setTimeout(r, 300));
      expect(deliveries.map((d) => d.data.beginId).sort()).toEqual(["1", "2", "3"]);
      expect(deliveries[0]?.data).toMatchObject({ kind: "batch", backfill: "contract", runId: "r1", endId: "18446744073709551615" });
    });

    it("keeps an id blocked after its job completed", async () => {
      await start();
      await queue.enqueue([batch(`${prefix}-done`, Date.now())]);
      await waitUntil("the delivery", () => deliveries.length === 1);
      await waitUntil("completion", async () => (await queue.counts()).active === 0);
      expect(await queue.enqueue([batch(`${prefix}-done`, Date.now())])).toEqual({ added: 0, duplicates: 1 });
      await new Promise((r) => setTimeout(r, 300));
      expect(deliveries).toHaveLength(1);
    });

    it("does not start a job before its run time", async () => {
      await start();
      const runAt = Date.now() + 1_200;
      await queue.enqueue([batch(`${prefix}-later`, runAt), batch(`${prefix}-now`, Date.now() - 5_000)]);
      await waitUntil("both deliveries", () => deliveries.length === 2, 15_000);
      const later = deliveries.find((d) => d.data.beginId === "1" && d.at >= runAt - 50);
      expect(later, "the delayed job ran before its run time").toBeDefined();
      expect(deliveries[0]?.at).toBeLessThan(runAt);
    });

    it("counts delayed and waiting jobs", async () => {
      const now = Date.now();
      await queue.enqueue([batch(`${prefix}-d1`, now + 60_000), batch(`${prefix}-d2`, now + 60_000), batch(`${prefix}-w1`, now - 1_000)]);
      await waitUntil("counts", async () => {
        const c = await queue.counts();
        return c.delayed === 2 && c.waiting === 1 && c.active === 0;
      });
    });

    it("retries a failing job up to its attempts, telling the attempt number", async () => {
      behaviour = (d) => {
        if (d.context.attempt < 3) throw new Error(`boom ${d.context.attempt}`);
        return "done";
      };
      await start();
      await queue.enqueue([batch(`${prefix}-retry`, Date.now(), { attempts: 3 })]);
      await waitUntil("three attempts", () => deliveries.length === 3, 15_000);
      expect(deliveries.map((d) => d.context)).toEqual([
        { attempt: 1, maxAttempts: 3 },
        { attempt: 2, maxAttempts: 3 },
        { attempt: 3, maxAttempts: 3 },
      ]);
      await waitUntil("no failed job", async () => (await queue.counts()).failed === 0 && (await queue.counts()).active === 0);
    });

    it("fails a job for good when its attempts are spent", async () => {
      behaviour = () => {
        throw new Error("always");
      };
      await start();
      await queue.enqueue([batch(`${prefix}-fail`, Date.now(), { attempts: 2 })]);
      await waitUntil("one failed job", async () => (await queue.counts()).failed === 1, 15_000);
      expect(deliveries).toHaveLength(2);
    });

    it("rejects a malformed job and stores none of the list", async () => {
      const good = batch(`${prefix}-good`, Date.now() + 60_000);
      for (const bad of [
        batch(`${prefix}:colon`, Date.now()),
        batch("12345", Date.now()),
        batch(`${prefix}-nan`, Number.NaN),
        batch(`${prefix}-zero`, Date.now(), { attempts: 0 }),
      ]) {
        await expect(queue.enqueue([good, bad])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      }
      expect(await queue.enqueue([good])).toEqual({ added: 1, duplicates: 0 });
    });

    it.skipIf(options.skipPriorities === true)("runs due jobs with a lower priority number first", async () => {
      const past = Date.now() - 1_000;
      await queue.enqueue([
        batch(`${prefix}-p9`, past, { priority: 9 }, "9"),
        batch(`${prefix}-p1`, past, { priority: 1 }, "1"),
        batch(`${prefix}-p5`, past, { priority: 5 }, "5"),
      ]);
      await start();
      await waitUntil("three deliveries", () => deliveries.length === 3);
      expect(deliveries.map((d) => d.data.beginId)).toEqual(["1", "5", "9"]);
    });

    it("looks jobs up by id: delayed, waiting, missing, in the order asked, and [] for no ids", async () => {
      const now = Date.now();
      expect(await queue.lookup([])).toEqual([]);
      await queue.enqueue([batch(`${prefix}-later`, now + 60_000), batch(`${prefix}-due`, now - 1_000)]);
      await waitUntil("the due job to be waiting", async () => {
        const states = await queue.lookup([`${prefix}-due`, `${prefix}-nope`, `${prefix}-later`, `${prefix}-due`]);
        return JSON.stringify(states) === JSON.stringify(["waiting", "missing", "delayed", "waiting"]);
      });
    });

    it("looks up an active, a completed and a failed job, and a job waiting for its retry as not failed", async () => {
      let release = (): void => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      behaviour = async (d) => {
        if (d.data.beginId === "1") await held;
        if (d.data.beginId === "2") throw new Error("always");
        if (d.data.beginId === "3" && d.context.attempt === 1) throw new Error("once");
        return "done" as const;
      };
      // One at a time, so a worker of concurrency 1 passes too.
      await start();
      await queue.enqueue([batch(`${prefix}-failed`, Date.now(), { attempts: 1 }, "2")]);
      await waitUntil("failed", async () => (await queue.lookup([`${prefix}-failed`]))[0] === "failed");
      await queue.enqueue([batch(`${prefix}-active`, Date.now(), {}, "1")]);
      await waitUntil("active", async () => (await queue.lookup([`${prefix}-active`]))[0] === "active");
      release();
      await waitUntil("completed", async () => (await queue.lookup([`${prefix}-active`]))[0] === "completed");
      // Between its attempts a retried job is delayed or waiting (its backoff), never failed: failed is final.
      await queue.enqueue([batch(`${prefix}-retry`, Date.now(), { attempts: 2 }, "3")]);
      const seen = new Set<string>();
      await waitUntil("the retry to complete", async () => {
        const [state] = await queue.lookup([`${prefix}-retry`]);
        seen.add(state ?? "none");
        return state === "completed";
      }, 15_000);
      expect(seen.has("failed")).toBe(false);
      expect(deliveries.filter((d) => d.data.beginId === "3").map((d) => d.context.attempt)).toEqual([1, 2]);
    });

    it("closes idempotently", async () => {
      await queue.close();
      await queue.close();
    });
  });
}
