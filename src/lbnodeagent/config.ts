// The agent's configuration from an LBNodeAgent (v1 or v2 shape), with PureLB's
// defaults: the local interface is the one of the lowest-metric default route, the
// dummy interface is kube-lb0, and gratuitous announcements are on.

export interface GarpSettings {
  enabled: boolean;
  count: number;
  intervalMs: number;
  initialDelayMs: number;
}

export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

export interface AgentConfig {
  /** `default`, or an anchored regular expression over interface names. */
  localInterface: 'default' | RegExp;
  /** v2 `interfaces[]`: more interfaces whose subnets count as local. */
  extraInterfaces: string[];
  dummyInterface: string;
  garp: GarpSettings;
  nodeSelector: LabelSelectorSpec | undefined;
  /** Seconds of validity for local VIPs (a dead-man switch); 0 means permanent. */
  localLifetimeSec: number;
}

export const DEFAULT_AGENT_CONFIG: AgentConfig = {
  localInterface: 'default',
  extraInterfaces: [],
  dummyInterface: 'kube-lb0',
  garp: { enabled: true, count: 3, intervalMs: 500, initialDelayMs: 0 },
  nodeSelector: undefined,
  localLifetimeSec: 0,
};

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go-style duration (`500ms`, `1.5s`); undefined when malformed. */
export function durationMs(text: unknown): number | undefined {
  if (typeof text === 'number') return text;
  if (typeof text !== 'string' || !/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
  return ms;
}

type Fields = Record<string, unknown>;
const obj = (v: unknown): Fields => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Fields) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export interface ParsedAgentConfig {
  config: AgentConfig;
  /** Field-level problems; the defaults are used for those fields. */
  problems: string[];
}

export function agentConfigFrom(spec: unknown): ParsedAgentConfig {
  const problems: string[] = [];
  const s = obj(spec);
  const local = obj(s.local);
  const config: AgentConfig = { ...DEFAULT_AGENT_CONFIG, garp: { ...DEFAULT_AGENT_CONFIG.garp } };

  const localint = str(local.localInterface) ?? str(local.localint);
  if (localint !== undefined && localint !== 'default') {
    try {
      config.localInterface = new RegExp(`^(?:${localint})$`);
    } catch (err) {
      problems.push(`spec.local.localint: "${localint}" is not a valid regular expression (${(err as Error).message}); using the default-route interface`);
    }
  }
  config.dummyInterface = str(local.dummyInterface) ?? str(local.extlbint) ?? config.dummyInterface;
  if (Array.isArray(local.interfaces)) config.extraInterfaces = local.interfaces.filter((i): i is string => typeof i === 'string');

  if (typeof local.sendgarp === 'boolean') config.garp.enabled = local.sendgarp;
  const garp = obj(local.garpConfig);
  if (typeof garp.enabled === 'boolean') config.garp.enabled = garp.enabled;
  if (typeof garp.count === 'number' && Number.isInteger(garp.count) && garp.count >= 1 && garp.count <= 10) config.garp.count = garp.count;
  for (const [field, key] of [['interval', 'intervalMs'], ['initialDelay', 'initialDelayMs']] as const) {
    if (garp[field] === undefined) continue;
    const ms = durationMs(garp[field]);
    if (ms === undefined || ms > 10_000) problems.push(`spec.local.garpConfig.${field}: "${String(garp[field])}" is not a duration up to 10s`);
    else config.garp[key] = ms;
  }
  const lifetime = obj(obj(local.addressConfig).localInterface).validLifetime;
  if (typeof lifetime === 'number' && lifetime >= 0) config.localLifetimeSec = lifetime;
  if (s.nodeSelector !== undefined) config.nodeSelector = obj(s.nodeSelector) as LabelSelectorSpec;
  return { config, problems };
}

/** Whether a node with `labels` is selected (no selector selects every node). */
export function selects(selector: LabelSelectorSpec | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
