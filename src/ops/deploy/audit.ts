// .runway/deploys.log on the target: one JSON object per line, appended (O_APPEND, one write), so
// "who deployed what, when, from which release to which, and did it work" survives every release.
import { operator, type Target, TargetError, reasonLine } from './target.js'

export type Action = 'deploy' | 'rollback'
/** ok: live and healthy. failed: refused before the switch, live release untouched. rolled-back: failed after the switch, previous release restored. */
export type Result = 'ok' | 'failed' | 'rolled-back'

export interface AuditEntry {
  at: string
  by: string
  action: Action
  sha: string
  from: string | null
  to: string
  result: Result
  /** The release `current` points to and serves after the attempt (null: nothing is live). */
  live?: string | null
  reason?: string
  durationMs: number
}

const LOG = '.runway/deploys.log'

export function entry(fields: Omit<AuditEntry, 'at' | 'by'>): AuditEntry {
  return { at: new Date().toISOString(), by: operator(), ...fields }
}

export async function appendAudit(target: Target, e: AuditEntry): Promise<void> {
  const r = await target.sh(`mkdir -p .runway && cat >> ${LOG}`, { input: `${JSON.stringify(e)}\n` })
  if (r.code !== 0) throw new TargetError(`cannot append to ${LOG}: ${reasonLine(r.stderr)}`)
}

export async function readAudit(target: Target): Promise<AuditEntry[]> {
  const r = await target.sh(`cat ${LOG} 2>/dev/null || true`)
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as AuditEntry]
      } catch {
        return [] // a line torn by a full disk must not hide the others
      }
    })
}

/** Releases whose last deploy attempt did not end live. */
export function failedReleases(log: AuditEntry[]): Map<string, string> {
  const failed = new Map<string, string>()
  for (const e of log) {
    if (e.action !== 'deploy') continue
    if (e.result === 'ok') failed.delete(e.to)
    else failed.set(e.to, e.reason ?? e.result)
  }
  return failed
}
