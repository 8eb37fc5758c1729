// `runway check --deploy` findings for browser clients (CORS). `*` or an any-origin regex with
// credentials never gets here: the settings loader refuses it, reported as runway.E002.
import type { Config } from '../../api/config.js'

export interface CorsFinding {
  id: string
  level: 'warning'
  message: string
}

const warn = (id: string, message: string): CorsFinding => ({ id, level: 'warning', message })
const LOCAL = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/

/** nginxText: the site config given with --nginx-conf, or undefined when none was given. */
export function corsFindings(config: Config, nginxText: string | undefined): CorsFinding[] {
  const { origins, originRegexes } = config.cors
  if (!origins.length && !originRegexes.length) return []
  const findings: CorsFinding[] = []
  if (origins.includes('*')) {
    findings.push(
      warn(
        'runway.W020',
        "CORS_ALLOWED_ORIGINS=*: every web site can call the API from its visitors' browsers and read the answers; list your front-end origins instead",
      ),
    )
  }
  const plain = origins.filter((o) => o.startsWith('http://') && !LOCAL.test(o))
  if (plain.length) {
    findings.push(
      warn(
        'runway.W021',
        `CORS_ALLOWED_ORIGINS allows ${plain.join(', ')} over plain HTTP: anyone on the network path can alter those pages and act as their users; allow the https:// origins`,
      ),
    )
  }
  if (origins.includes('null')) {
    findings.push(
      warn(
        'runway.W022',
        'CORS_ALLOWED_ORIGINS lists null: sandboxed frames and local files from any site send Origin: null; remove it unless a known client needs it',
      ),
    )
  }
  if (nginxText !== undefined) {
    const missing = origins.filter((o) => o !== '*' && !nginxText.includes(`"${o}"`))
    if (!/map\s+\$http_origin\s/.test(nginxText) || missing.length) {
      findings.push(
        warn(
          'runway.W023',
          `the nginx config does not carry the app's CORS origins${missing.length ? ` (${missing.join(', ')})` : ''}: its own errors (429, 502, 504) are unreadable for those pages; render it again with \`runway nginx render … --cors-from-app\``,
        ),
      )
    }
  }
  return findings
}
