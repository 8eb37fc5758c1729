// Renders the site config (for an existing nginx's http block) or the standalone nginx.conf (a
// whole nginx under its own prefix) from validated settings.
import { renderTemplate } from './template.js'
import { templateValues, validate, type NginxInput, type NginxSettings } from './options.js'

export function renderSettings(settings: NginxSettings): string {
  const template = settings.variant === 'standalone' ? 'nginx.conf' : 'site.conf'
  return `${renderTemplate(template, templateValues(settings))}\n`
}

/** Validates (throwing NginxOptionError) and renders. */
export function renderNginx(input: NginxInput): { settings: NginxSettings; text: string } {
  const settings = validate(input)
  return { settings, text: renderSettings(settings) }
}
