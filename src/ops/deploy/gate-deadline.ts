// When the health gate may stop checking. The deadline never cuts a verdict short: at least one
// full check runs (pm2 jlist can take seconds on a loaded host), and a release healthy at the
// deadline is checked until its stability window is confirmed or broken, for at most
// GRACE_MS past it (workers that keep changing never settle).
export const GRACE_MS = 10_000

export function keepChecking(s: { checked: boolean; elapsedMs: number; timeoutMs: number; healthySince: number | undefined }): boolean {
  if (!s.checked || s.elapsedMs < s.timeoutMs) return true
  return s.healthySince !== undefined && s.elapsedMs < s.timeoutMs + GRACE_MS
}
