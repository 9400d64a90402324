import { SuperSpreaderError, describeValue } from "@superspreader/core";
import type { SuperSpreader, SuperSpreaderEventName, SuperSpreaderEvents, SuperSpreaderListener } from "@superspreader/core";

/** What the event-driven exporters need from the runtime. */
export type SuperSpreaderEventSource = Pick<SuperSpreader, "on">;

/** One optional listener per event name. */
export type EventHandlers = { [E in SuperSpreaderEventName]?: SuperSpreaderListener<E> };

/**
 * The field `batchStarted` is expected to carry once core records each batch's planned run time.
 * Read defensively so queue lag starts being measured the day core adds it, without a release here.
 */
type MaybeScheduled = SuperSpreaderEvents["batchStarted"] & { readonly scheduledAt?: unknown };

/** Rejects anything that is not a runtime with the given methods, naming the option. */
export function checkSpreader(value: unknown, methods: readonly (keyof SuperSpreader)[]): void {
  for (const method of methods) {
    if (typeof (value as Record<string, unknown> | null)?.[method] !== "function") {
      throw new SuperSpreaderError(
        "INVALID_ARGUMENT",
        `spreader must be a SuperSpreader (from createSuperSpreader) with a ${method}() method, got ${describeValue(value)}`,
        { field: "spreader" },
      );
    }
  }
}

/** Subscribes every handler; returns one idempotent function that removes them all. */
export function subscribe(spreader: SuperSpreaderEventSource, handlers: EventHandlers): () => void {
  const offs: (() => void)[] = [];
  for (const name of Object.keys(handlers) as SuperSpreaderEventName[]) {
    const handler = handlers[name];
    if (handler) offs.push(spreader.on(name, handler as SuperSpreaderListener<typeof name>));
  }
  return () => {
    for (const off of offs.splice(0)) off();
  };
}

/** A batch's planned run time (epoch ms), when the runtime reports it. */
export function scheduledAtOf(event: SuperSpreaderEvents["batchStarted"]): number | undefined {
  const at = (event as MaybeScheduled).scheduledAt;
  return typeof at === "number" && Number.isFinite(at) ? at : undefined;
}

/**
 * Queue lag (ms, ≥ 0) of a started batch, or undefined when its planned time is unknown. First
 * attempts only: a retry runs when the queue's backoff says, not at the planned time.
 */
export function queueLagMs(event: SuperSpreaderEvents["batchStarted"]): number | undefined {
  if (event.attempt !== 1) return undefined;
  const scheduledAt = scheduledAtOf(event);
  return scheduledAt === undefined ? undefined : Math.max(0, event.at - scheduledAt);
}

/** The error's `code`, else its `name`, else "Error": the same classification core stores with a failed range. */
export function errorType(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | null | undefined;
  if (typeof e?.code === "string") return e.code;
  if (typeof e?.name === "string") return e.name;
  return "Error";
}

/** The error's message, or the value rendered as text. */
export function errorMessage(error: unknown): string {
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return typeof message === "string" ? message : String(error);
}
