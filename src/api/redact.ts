// Secrets never reach a configuration error, a log line or CLI output. Two layers: patterns that
// look like secrets wherever they appear (URL passwords, password= parameters, JWTs, PEM private
// keys), and the exact secret values this process was configured with (its signing key, its
// database password), which no pattern could recognise.

export const HIDDEN = '[redacted]'

/** Setting names whose values are secrets: their values are never echoed, even when invalid. */
export const isSecretSetting = (name: string) => /(^|_)(KEY|SECRET|PASSWORD|PASS|TOKEN)$/.test(name)

const PATTERNS: [RegExp, string][] = [
  // scheme://user:password@host → scheme://user:[redacted]@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*):[^@\s/]*@/gi, `$1:${HIDDEN}@`],
  // ?password=…, &sslpassword=…, secret=…, token=…, key=…
  [/([?&;\s](?:ssl)?(?:password|passwd|pwd|secret|token|api_?key|key)=)[^&;\s"']*/gi, `$1${HIDDEN}`],
  // JWTs (three base64url parts, the first a JSON header)
  [/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/g, HIDDEN],
  // PEM private keys
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, HIDDEN],
]

/** `text` with secret-looking parts and the given exact secrets replaced. */
export function redactSecrets(text: string, known: readonly string[] = []): string {
  let out = text
  for (const secret of known) if (secret.length >= 4) out = out.split(secret).join(HIDDEN)
  for (const [re, by] of PATTERNS) out = out.replace(re, by)
  return out
}

/** The password part of a connection URL, if any (so it can be scrubbed wherever it shows up). */
export function urlPassword(url: string): string | undefined {
  try {
    const p = new URL(url).password
    return p ? decodeURIComponent(p) : undefined
  } catch {
    return undefined
  }
}
