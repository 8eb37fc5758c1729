// Renders the site config (for an existing nginx's http block) or the standalone nginx.conf (a
// whole nginx under its own prefix) from validated settings.
import { fileURLToPath } from 'node:url'
import { renderTemplate } from '../template.js'
import { templateValues, validate, type NginxInput, type NginxSettings } from './options.js'

/** nginx/ at the package root: four levels above src/ops/proxy/nginx/ and dist/ops/proxy/nginx/. */
export const NGINX_TEMPLATES = fileURLToPath(new URL('../../../../nginx/', import.meta.url))

export function renderSettings(settings: NginxSettings): string {
  const template = settings.variant === 'standalone' ? 'nginx.conf' : 'site.conf'
  return `${renderTemplate(template, templateValues(settings), NGINX_TEMPLATES)}\n`
}

/** Validates (throwing InvalidSetting) and renders. */
export function renderNginx(input: NginxInput): { settings: NginxSettings; text: string } {
  const settings = validate(input)
  return { settings, text: renderSettings(settings) }
}
