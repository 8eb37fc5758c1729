// What every `runway` subcommand is: a name, a one-line summary, its --help text and run().
// Failures are CliError: one line saying what went wrong and how to fix it, and an exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { InvalidSetting } from '../lib/errors.js'

export interface Command {
  name: string
  summary: string
  usage: string
  run(argv: string[]): Promise<number>
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message)
  }
}

/** A library's refused value is a usage error here: worded as the flag that carried it, exit 2. */
export function flagError(err: unknown): unknown {
  return err instanceof InvalidSetting ? new CliError(`--${err.message}`, 2) : err
}

/** node:util parseArgs, with unknown flags turned into a one-line CliError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true })
  } catch (err) {
    throw new CliError(`${(err as Error).message.split('\n')[0]} (see --help)`, 2)
  }
}

export const print = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
/** Progress and notes go to stderr, so stdout stays clean for --json and pipes. */
export const note = (text: string) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`)
