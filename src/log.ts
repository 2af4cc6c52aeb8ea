// JSON logs with fixed keys (`op`, `service`, `ip`, `node`, `err`) so that operators
// can filter them; winston does the formatting. Secrets never go into a log line.

import winston from 'winston';

export interface LogFields {
  op?: string;
  service?: string;
  ip?: string;
  node?: string;
  err?: unknown;
  [key: string]: unknown;
}

export type Logger = {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
};

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

function wrap(w: winston.Logger): Logger {
  const emit = (level: string) => (msg: string, fields: LogFields = {}) => {
    const { err, ...rest } = fields;
    w.log(level, msg, err === undefined ? rest : { ...rest, err: errorText(err) });
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => wrap(w.child(fields)),
  };
}

export function createLogger(component: string, level = process.env.PURELB_LOG_LEVEL ?? 'info'): Logger {
  return wrap(
    winston.createLogger({
      level,
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      defaultMeta: { component },
      transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
    }),
  );
}
