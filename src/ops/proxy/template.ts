// A deliberately small template language for a proxy's config templates (nginx/*.template), line based so the
// rendered config keeps the template's layout:
//   {{name}}              a value (a value alone on its line may span several lines; each is indented)
//   {{> file}}            another template (file.template in the same directory), indented like the tag
//   {{#if flag}} … {{else}} … {{/if}}   on lines of their own; `flag` must be a boolean
// Values are inserted verbatim: they are validated before rendering (site.ts, <proxy>/options.ts). Unknown
// names are programming errors and throw, so a template can never render half-filled.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export type TemplateValues = Record<string, string | number | boolean>

const IF = /^\s*\{\{#if (\w+)\}\}\s*$/
const ELSE = /^\s*\{\{else\}\}\s*$/
const END = /^\s*\{\{\/if\}\}\s*$/
const PARTIAL = /^(\s*)\{\{> ([\w.-]+)\}\}\s*$/
const ALONE = /^(\s*)\{\{(\w+)\}\}\s*$/
const VALUE = /\{\{(\w+)\}\}/g

export function renderTemplate(name: string, values: TemplateValues, dir: string, depth = 0): string {
  if (depth > 8) throw new Error(`template ${name}: partials nested too deeply`)
  const source = readFileSync(join(dir, `${name}.template`), 'utf8')
  const out: string[] = []
  // One entry per open {{#if}}: is its current branch being emitted?
  const stack: { cond: boolean; inElse: boolean }[] = []
  const active = () => stack.every((s) => (s.inElse ? !s.cond : s.cond))
  const lookup = (key: string, line: number) => {
    const v = values[key]
    if (v === undefined) throw new Error(`template ${name}:${line}: no value for {{${key}}}`)
    return v
  }
  const lines = source.split('\n')
  if (lines.at(-1) === '') lines.pop()
  lines.forEach((text, i) => {
    const n = i + 1
    let m: RegExpExecArray | null
    if ((m = IF.exec(text))) {
      const v = lookup(m[1]!, n)
      if (typeof v !== 'boolean') throw new Error(`template ${name}:${n}: {{#if ${m[1]}}} needs a boolean`)
      stack.push({ cond: v, inElse: false })
    } else if (ELSE.test(text)) {
      const top = stack.at(-1)
      if (!top || top.inElse) throw new Error(`template ${name}:${n}: {{else}} without {{#if}}`)
      top.inElse = true
    } else if (END.test(text)) {
      if (!stack.pop()) throw new Error(`template ${name}:${n}: {{/if}} without {{#if}}`)
    } else if (!active()) {
      // inside a branch that is not taken
    } else if ((m = PARTIAL.exec(text))) {
      const indent = m[1]!
      const body = renderTemplate(m[2]!, values, dir, depth + 1)
      for (const line of body.split('\n')) out.push(line ? indent + line : '')
    } else if ((m = ALONE.exec(text))) {
      const indent = m[1]!
      for (const line of String(lookup(m[2]!, n)).split('\n')) out.push(line ? indent + line : '')
    } else {
      out.push(text.replace(VALUE, (_, key: string) => String(lookup(key, n))))
    }
  })
  if (stack.length) throw new Error(`template ${name}: {{#if}} without {{/if}}`)
  return out.join('\n').replace(/\n+$/, '')
}
