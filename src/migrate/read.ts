// Reading another load balancer's objects, which arrive as untyped YAML: each field is
// checked for its type where it is read, and every problem is recorded against the
// source object and the field path as that object spells it, so an operator can find
// it in the manifest (`ConfigMap metallb-system/config: address-pools[1].protocol: …`).

import { NamespaceName } from '../api/meta.ts';

/** One problem found while converting, named by its source object and field. */
export interface MigrationIssue {
  /** The object it is about, e.g. `IPAddressPool metallb-system/first-pool`. */
  readonly source: string;
  /** The field path inside that object, e.g. `spec.addresses[1]`; empty for the whole object. */
  readonly field: string;
  readonly message: string;
}

export function formatMigrationIssue(issue: MigrationIssue): string {
  return issue.field === '' ? `${issue.source}: ${issue.message}` : `${issue.source}: ${issue.field}: ${issue.message}`;
}

/** Where a converter records what it found about one source object. */
export interface Issues {
  readonly source: string;
  warn(field: string, message: string): void;
  error(field: string, message: string): void;
}

/** Every warning and error of one conversion. */
export class IssueLog {
  readonly warnings: MigrationIssue[] = [];
  readonly errors: MigrationIssue[] = [];

  about(source: string): Issues {
    return {
      source,
      warn: (field, message) => this.warnings.push({ source, field, message }),
      error: (field, message) => this.errors.push({ source, field, message }),
    };
  }
}

export type Fields = Readonly<Record<string, unknown>>;

export function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `spec` + `addresses` → `spec.addresses`; `spec.addresses` + 1 → `spec.addresses[1]`. */
export function fieldAt(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

const shown = (value: unknown) => JSON.stringify(value) ?? String(value);

/** Not written: the source's default applies. */
export const absent = (value: unknown): value is undefined | null => value === undefined || value === null;

/**
 * Typed reads of one source object's fields. Absent (or null) is not an error: the
 * reader returns undefined and the caller applies the source's default. A value of the
 * wrong type is an error, and the reader returns undefined too.
 */
export class FieldReader {
  readonly issues: Issues;

  constructor(issues: Issues) {
    this.issues = issues;
  }

  private wrong(field: string, value: unknown, what: string): undefined {
    this.issues.error(field, `must be ${what}, not ${shown(value)}`);
    return undefined;
  }

  object(value: unknown, field: string): Fields | undefined {
    if (absent(value)) return undefined;
    return isFields(value) ? value : this.wrong(field, value, 'an object');
  }

  list(value: unknown, field: string): unknown[] | undefined {
    if (absent(value)) return undefined;
    return Array.isArray(value) ? value : this.wrong(field, value, 'a list');
  }

  string(value: unknown, field: string): string | undefined {
    if (absent(value)) return undefined;
    return typeof value === 'string' ? value : this.wrong(field, value, 'a string');
  }

  boolean(value: unknown, field: string): boolean | undefined {
    if (absent(value)) return undefined;
    return typeof value === 'boolean' ? value : this.wrong(field, value, 'true or false');
  }

  integer(value: unknown, field: string): number | undefined {
    if (absent(value)) return undefined;
    return Number.isSafeInteger(value) ? (value as number) : this.wrong(field, value, 'an integer');
  }

  /** A list that must have an entry: absent or empty is an error with `message`. */
  nonEmptyList(value: unknown, field: string, message: string): unknown[] | undefined {
    const list = this.list(value, field);
    if (list === undefined && !absent(value)) return undefined;
    if (list === undefined || list.length === 0) {
      this.issues.error(field, message);
      return undefined;
    }
    return list;
  }

  /** A list of strings; the entries that are not strings are errors and left out. */
  strings(value: unknown, field: string): string[] | undefined {
    const list = this.list(value, field);
    if (list === undefined) return undefined;
    return list.flatMap((v, i) => this.string(v, fieldAt(field, i)) ?? []);
  }

  /** A list of namespace names; a name Kubernetes would refuse is an error and left out. */
  namespaces(value: unknown, field: string): string[] {
    return (this.strings(value, field) ?? []).filter((ns, i) => {
      const valid = NamespaceName.safeParse(ns).success;
      if (!valid) this.issues.error(fieldAt(field, i), `"${ns}" is not a namespace name`);
      return valid;
    });
  }

  /** Fields that the source format does not have: warned, so that nothing is dropped silently. */
  unknown(obj: Fields, base: string, known: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) this.issues.warn(fieldAt(base, key), 'unknown field: ignored');
    }
  }

  /** A field that purelb-ts cannot express, when it is set. */
  notExpressible(value: unknown, field: string, why: string): void {
    if (absent(value)) return;
    if (Array.isArray(value) && value.length === 0) return;
    if (isFields(value) && Object.keys(value).length === 0) return;
    this.issues.warn(field, `not converted: ${why}`);
  }
}
