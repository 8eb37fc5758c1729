// The rules a new password must meet: Django's four default AUTH_PASSWORD_VALIDATORS, with their
// wording and order (UserAttributeSimilarity, MinimumLength, CommonPassword, Numeric), so a client
// written against Django shows the same field errors. Used by sign-up, the password-change
// endpoint and `runway user create|set-password` (which can override them with --allow-weak).

/** Django's MinimumLengthValidator default. */
export const MIN_LENGTH = 8
/** Django's UserAttributeSimilarityValidator default. */
export const MAX_SIMILARITY = 0.7

export const PasswordMessages = {
  similar: 'The password is too similar to the username.',
  tooShort: `This password is too short. It must contain at least ${MIN_LENGTH} characters.`,
  common: 'This password is too common.',
  numeric: 'This password is entirely numeric.',
} as const

/**
 * The common-password list: zxcvbn-ts's `passwords-common` (~49k entries, from leaked-password
 * corpora, maintained by the zxcvbn-ts project), lowercased into a Set. Loaded on the first check
 * only (~30 ms, ~10 MB of heap): API workers that never see a password change or a sign-up never
 * hold it.
 */
let common: Promise<Set<string>> | undefined
export function commonPasswords(): Promise<Set<string>> {
  common ??= import('@zxcvbn-ts/language-common').then(({ dictionary }) => new Set(dictionary['passwords-common'].map((p) => p.toLowerCase())))
  return common
}

/**
 * zxcvbn leaves runs such as `abcdefgh`, `zyxwvuts` or `aaaaaaaa` out of its list because its
 * sequence and repeat matchers find them; Django's list has them. Treated as common here too.
 */
function isRunOrRepeat(lower: string): boolean {
  if (lower.length < 3) return false
  const step = lower.charCodeAt(1) - lower.charCodeAt(0)
  if (step < -1 || step > 1) return false
  for (let i = 2; i < lower.length; i++) if (lower.charCodeAt(i) - lower.charCodeAt(i - 1) !== step) return false
  return true
}

/** Python's SequenceMatcher(a, b).quick_ratio(): 2 * (multiset intersection) / (|a| + |b|). */
function quickRatio(a: string, b: string): number {
  const avail = new Map<string, number>()
  for (const ch of b) avail.set(ch, (avail.get(ch) ?? 0) + 1)
  let matches = 0
  for (const ch of a) {
    const n = avail.get(ch) ?? 0
    if (n > 0) {
      avail.set(ch, n - 1)
      matches++
    }
  }
  const total = [...a].length + [...b].length
  return total ? (2 * matches) / total : 0
}

/**
 * Django's UserAttributeSimilarityValidator on the username: the username and each of its parts
 * split at non-word characters, compared with quick_ratio; parts far shorter than the password
 * are skipped, as Django (≥ 4.2) does, so a long passphrase is not refused for sharing letters.
 */
function tooSimilar(lowerPassword: string, username: string): boolean {
  if (!username) return false
  const value = username.toLowerCase()
  const pwdLen = [...lowerPassword].length
  for (const part of [...value.split(/[^\p{L}\p{N}_]+/u), value]) {
    if (!part) continue
    const partLen = [...part].length
    if (pwdLen >= 10 * partLen && partLen < (MAX_SIMILARITY / 2) * pwdLen) continue
    if (quickRatio(lowerPassword, part) >= MAX_SIMILARITY) return true
  }
  return false
}

/** Every rule the password breaks, as Django's messages in Django's order; [] when it is fine. */
export async function passwordProblems(password: string, username = ''): Promise<string[]> {
  const problems: string[] = []
  const lower = password.toLowerCase()
  if (tooSimilar(lower, username)) problems.push(PasswordMessages.similar)
  if ([...password].length < MIN_LENGTH) problems.push(PasswordMessages.tooShort)
  // Django compares password.lower().strip() with its (lowercase) list.
  const key = lower.trim()
  if (isRunOrRepeat(key) || (await commonPasswords()).has(key)) problems.push(PasswordMessages.common)
  if (/^[0-9]+$/.test(password)) problems.push(PasswordMessages.numeric)
  return problems
}
