// Option parsing shared by the benchmark scripts in this folder.

/** A whole number of 1 or more from `--name`, or an error naming the option. */
export function positiveInt(name: string, value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number of 1 or more`)
  return n
}
