import { SuperSpreaderError, describeValue } from "./errors.js";
import type { BudgetClaim, BudgetMember } from "./ports.js";

/*
 * A rate budget shared by the backfills writing one database (issue #9). Each member claims, at its
 * tick, the rate it plans its next cycle with; the claims are kept so that their sum never exceeds the
 * budget, at any instant:
 *
 * - The member's fair share is a weighted max-min (water-filling) division of the budget over what the
 *   members want: a member wanting less than its weight's share keeps only what it wants, and the rest
 *   goes to the others by weight.
 * - Its cap is the smaller of that share and the room the others' current caps leave. A member that
 *   joins while the others still run at their old caps gets only the room left, and its fair share at
 *   its next tick, after they lowered theirs at theirs. So starting a second backfill never doubles the
 *   load, not even for one cycle.
 * - A member that stops claiming (paused, finished, crashed) is dropped after `ttlMs`.
 *
 * Stores keep the records; this module computes a claim from them, the same way for every store.
 */

/** Caps are kept to 4 decimals, rounded down so that their sum stays within the budget. */
const floor4 = (value: number): number => Math.max(0, Math.floor(value * 10_000 + 1e-6) / 10_000);

/** Checks a claim's fields; INVALID_ARGUMENT names the field. */
export function checkBudgetClaim(key: unknown, member: unknown, claim: BudgetClaim, at: unknown): void {
  if (typeof key !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(key)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `key must be 1–100 letters, digits, "_", "." or "-", got ${describeValue(key)}`, { field: "key" });
  }
  if (typeof member !== "string" || member.length === 0 || member.length > 200) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `member must be a non-empty string of at most 200 characters, got ${describeValue(member)}`, { field: "member" });
  }
  if (typeof claim !== "object" || claim === null) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `claim must be { perSecond, weight, want, ttlMs }, got ${describeValue(claim)}`, { field: "claim" });
  }
  for (const field of ["perSecond", "want"] as const) {
    const v = claim[field];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new SuperSpreaderError("INVALID_ARGUMENT", `claim.${field} must be a finite number ≥ 0, got ${describeValue(v)}`, { field: `claim.${field}` });
    }
  }
  if (typeof claim.weight !== "number" || !Number.isFinite(claim.weight) || claim.weight <= 0) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `claim.weight must be a finite number > 0, got ${describeValue(claim.weight)}`, { field: "claim.weight" });
  }
  if (!Number.isSafeInteger(claim.ttlMs) || claim.ttlMs < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `claim.ttlMs must be a whole number of ms ≥ 1, got ${describeValue(claim.ttlMs)}`, { field: "claim.ttlMs" });
  }
  if (typeof at !== "number" || !Number.isFinite(at)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `at must be epoch ms, got ${describeValue(at)}`, { field: "at" });
  }
}

/** Weighted max-min fair shares of `total` over what each member wants. */
export function fairShares(total: number, members: ReadonlyArray<{ readonly member: string; readonly weight: number; readonly want: number }>): Map<string, number> {
  const shares = new Map<string, number>();
  let left = total;
  let open = members.filter((m) => m.want > 0);
  for (const m of members) if (m.want <= 0) shares.set(m.member, 0);
  while (open.length > 0) {
    const weights = open.reduce((sum, m) => sum + m.weight, 0);
    const satisfied = open.filter((m) => m.want <= (left * m.weight) / weights);
    if (satisfied.length === 0) {
      for (const m of open) shares.set(m.member, (left * m.weight) / weights);
      break;
    }
    for (const m of satisfied) {
      shares.set(m.member, m.want);
      left -= m.want;
    }
    open = open.filter((m) => !satisfied.includes(m));
  }
  return shares;
}

/**
 * One claim against the stored records (`stored`, by member): the member's new record, the records
 * that expired (to delete), and every live member after the claim. Pure: a store calls it inside
 * whatever makes its read-compute-write atomic.
 *
 * @example
 * ```ts
 * const { record, expired } = claimShare({ a: { weight: 1, want: 10, cap: 10, at: 0 } }, "b", { perSecond: 10, weight: 1, want: 10, ttlMs: 60_000 }, 1_000);
 * record.cap; // 0: "a" still runs at 10/s; "b" gets 5 once "a" claimed its half
 * ```
 */
export function claimShare(
  stored: Readonly<Record<string, Omit<BudgetMember, "member">>>,
  member: string,
  claim: BudgetClaim,
  at: number,
): { record: Omit<BudgetMember, "member">; expired: string[]; members: BudgetMember[] } {
  const expired: string[] = [];
  const others: BudgetMember[] = [];
  for (const [name, record] of Object.entries(stored)) {
    if (name === member) continue;
    if (at - record.at > claim.ttlMs) expired.push(name);
    else others.push({ member: name, ...record });
  }
  const fair = fairShares(claim.perSecond, [...others, { member, weight: claim.weight, want: claim.want }]).get(member) ?? 0;
  const room = claim.perSecond - others.reduce((sum, m) => sum + m.cap, 0);
  const record = { weight: claim.weight, want: claim.want, cap: floor4(Math.min(claim.want, fair, room)), at };
  const members = [...others, { member, ...record }].sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  return { record, expired: expired.sort(), members };
}
