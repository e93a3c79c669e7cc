// What a bulk set or the approvals queue says to a person: what deciding each item does, the
// counts of each step, and the words on the confirm button. Pure, so it is tested without a
// browser.

import type { BulkItem, BulkStep } from "../api/types";

export const STEP_LABEL: Record<BulkStep, string> = {
  apply: "Applied",
  first_approval: "First approval",
  second_approval: "Second approval: applied",
  refused: "Not resolved",
};

export const STEP_TONE: Record<BulkStep, "success" | "warning" | "accent" | "danger"> = {
  apply: "success",
  first_approval: "warning",
  second_approval: "accent",
  refused: "danger",
};

export type StepCounts = Record<BulkStep, number>;

export function stepCounts(items: BulkItem[]): StepCounts {
  const counts: StepCounts = { apply: 0, first_approval: 0, second_approval: 0, refused: 0 };
  for (const i of items) counts[i.step] += 1;
  return counts;
}

/** "2 applied, 3 first approvals (a second steward must approve), 1 not resolved". */
export function describeCounts(c: StepCounts): string {
  const parts: string[] = [];
  if (c.apply) parts.push(`${c.apply} applied now`);
  if (c.second_approval) parts.push(`${c.second_approval} applied with your second approval`);
  if (c.first_approval) parts.push(`${c.first_approval} approved by you, awaiting a second steward`);
  if (c.refused) parts.push(`${c.refused} not resolved by this rule`);
  return parts.length ? parts.join(", ") : "nothing to resolve";
}

/** The confirm button: what the click does, in numbers. */
export function confirmLabel(c: StepCounts): string {
  const acting = c.apply + c.second_approval + c.first_approval;
  if (acting === 0) return "Nothing to resolve";
  if (c.first_approval && !c.apply && !c.second_approval) return `Approve ${c.first_approval}`;
  if (c.second_approval && !c.apply && !c.first_approval) return `Approve and apply ${c.second_approval}`;
  return `Resolve ${acting}`;
}
