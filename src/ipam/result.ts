// Results as values: user input (ServiceGroups, annotations) is expected to be wrong
// sometimes, and the allocator turns these values into Events and conditions.

/** A problem with one field of user input, phrased for an operator reading an Event. */
export interface FieldIssue {
  /** Where the value was written, e.g. `spec.local.v4pools[1].pool`. */
  readonly field: string;
  /** The offending value as written (stringified when it was not a string). */
  readonly value: string;
  readonly message: string;
}

/** Parsed configuration: a value with warnings, or the list of everything wrong. */
export type Validated<T> =
  | { readonly ok: true; readonly value: T; readonly warnings: readonly FieldIssue[] }
  | { readonly ok: false; readonly errors: readonly FieldIssue[] };

/** The outcome of an operation that fails for one reason. */
export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}

export function issue(field: string, value: unknown, message: string): FieldIssue {
  return { field, value: shown(value), message };
}

/** A failed validation with one issue. */
export function rejected(field: string, value: unknown, message: string): { ok: false; errors: FieldIssue[] } {
  return { ok: false, errors: [issue(field, value, message)] };
}

function shown(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return JSON.stringify(value) ?? String(value);
}
