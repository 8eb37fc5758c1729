// Errors libraries throw for a value they refuse. The library names the setting in its own terms
// and says what it expects; how to word it (as a --flag, an environment variable) and which exit
// code it earns is the caller's business (src/cli words it as a flag, exit 2).

/** A value a library refused: which setting, the value, and what it expects. */
export class InvalidSetting extends Error {
  override name = 'InvalidSetting'
  constructor(
    readonly setting: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${setting} ${JSON.stringify(value === undefined ? '' : String(value))} is invalid: expected ${expected}`)
  }
}
