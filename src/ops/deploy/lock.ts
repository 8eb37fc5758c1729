// The deploy lock: one deploy or rollback per target at a time. mkdir(2) is atomic on every
// filesystem, so two deploys racing for `.runway/lock` cannot both win. The holder (who, from
// where, which pid, what, since when) is written inside, so the refusal can name it; a lock left
// by a killed deploy is broken explicitly (--break-lock), never silently.
import { operator, q, type Target, TargetError, reasonLine } from './target.js'

export interface LockHolder {
  by: string
  pid: number
  command: string
  since: string
}

export class LockedError extends TargetError {
  constructor(
    readonly holder: LockHolder | null,
    label: string,
  ) {
    super(
      holder
        ? `${label} is locked by ${holder.by} (pid ${holder.pid}, ${holder.command}) since ${holder.since}: wait for it, or if that deploy is dead run again with --break-lock`
        : `${label} is locked (holder unknown): if no deploy is running, run again with --break-lock`,
    )
  }
}

const LOCK = '.runway/lock'

export async function readLock(target: Target): Promise<LockHolder | null | undefined> {
  const r = await target.sh(`[ -d ${LOCK} ] || exit 3; cat ${LOCK}/holder 2>/dev/null || true`)
  if (r.code === 3) return undefined
  try {
    return JSON.parse(r.stdout) as LockHolder
  } catch {
    return null
  }
}

export interface Lock {
  holder: LockHolder
  /** The holder of a lock that was broken to take this one. */
  broke?: LockHolder | null
  release(): Promise<void>
}

export async function acquireLock(target: Target, command: string, o: { breakLock?: boolean } = {}): Promise<Lock> {
  const holder: LockHolder = { by: operator(), pid: process.pid, command, since: new Date().toISOString() }
  let broke: LockHolder | null | undefined
  if (o.breakLock) {
    broke = await readLock(target)
    await target.sh(`rm -rf ${LOCK}`)
  }
  const r = await target.sh(`mkdir -p .runway && mkdir ${LOCK} 2>/dev/null || exit 3; cat > ${LOCK}/holder`, { input: JSON.stringify(holder) })
  if (r.code === 3) throw new LockedError(await readLock(target).then((h) => h ?? null), target.label)
  if (r.code !== 0) throw new TargetError(`cannot take the deploy lock on ${target.label}: ${reasonLine(r.stderr)}`)
  return {
    holder,
    broke,
    async release() {
      // Only our own lock: if someone broke it meanwhile, theirs stays.
      await target.sh(`grep -q ${q(`"pid":${holder.pid},`)} ${LOCK}/holder 2>/dev/null && grep -q ${q(holder.since)} ${LOCK}/holder && rm -rf ${LOCK}; true`)
    },
  }
}
