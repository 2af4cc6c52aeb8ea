// A validation rule written twice, side by side: once in CEL for the API server
// (`x-kubernetes-validations`, checked at admission) and once in TypeScript for zod
// (offline validation, the normaliser). Both share one message and one field, so an
// operator reads the same words from `kubectl apply` and from our tools.

import type * as z from 'zod';

export interface Rule<T> {
  /** CEL evaluated by the API server with `self` bound to the value. */
  cel: string;
  /** What is wrong, naming the field. */
  message: string;
  /** The field the rule is about, relative to the value (`.pool`); absent: the value itself. */
  field?: string;
  /** The same rule in TypeScript: true when `self` satisfies it. */
  holds: (self: T) => boolean;
  /**
   * String fields of `self` whose values the error quotes (a rule on a string needs none:
   * the API server quotes it). Only fields set whenever the rule fails: otherwise the API
   * server falls back to `message`.
   */
  quote?: Array<keyof T & string>;
}

/** The CRD form of a rule. */
export interface CelValidation {
  rule: string;
  message: string;
  messageExpression?: string;
  fieldPath?: string;
}

export const VALIDATIONS_KEY = 'x-kubernetes-validations';

function fieldSegments(field: string | undefined): string[] {
  return field ? field.slice(1).split('.') : [];
}

const celString = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

/** `message (pool '10.0.0.0/23', subnet '10.0.0.0/24')`, as zod reports it. */
function quotedMessage<T>(rule: Rule<T>, self: T): string {
  if (!rule.quote) return rule.message;
  const values = rule.quote.map((f) => `${f} '${String((self as Record<string, unknown>)[f])}'`);
  return `${rule.message} (${values.join(', ')})`;
}

/** The same text built by the API server. */
function celQuotedMessage<T>(rule: Rule<T>): string | undefined {
  if (!rule.quote) return undefined;
  const values = rule.quote.map((f, i) => `${celString(`${i ? ', ' : ''}${f} '`)} + self.${f} + "'"`);
  return `${celString(`${rule.message} (`)} + ${values.join(' + ')} + ')'`;
}

/**
 * Attaches rules to a schema: as a zod refinement (issues at the rule's field) and as
 * `x-kubernetes-validations` metadata, which the CRD generator copies into the schema.
 */
export function withRules<S extends z.ZodType>(schema: S, rules: Rule<z.output<S>>[]): S {
  const validations: CelValidation[] = rules.map((r) => {
    const messageExpression = celQuotedMessage(r);
    return {
      rule: r.cel,
      message: r.message,
      ...(messageExpression ? { messageExpression } : {}),
      ...(r.field ? { fieldPath: r.field } : {}),
    };
  });
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (!r.holds(value)) {
        ctx.addIssue({ code: 'custom', message: quotedMessage(r, value), path: fieldSegments(r.field), input: value });
      }
    }
  });
  return refined.meta({ ...refined.meta(), [VALIDATIONS_KEY]: validations });
}
