// Structured JSON logs. Only routing facts are logged: never bodies, keys, tokens or cookies.
import { pino, type Logger } from 'pino';
import type { Writable } from 'node:stream';

export type { Logger };

export function createLogger(level: string, stream: Writable | undefined): Logger {
  return pino(
    {
      level,
      base: { svc: 'umbra-relay' },
      // Belt and braces: these keys are never logged on purpose; if one slips in, it is removed.
      redact: { paths: ['cookie', 'authKey', 'vault', 'token', 'ct', 'sig', '*.cookie', '*.authKey', '*.token'], remove: true },
    },
    stream ?? pino.destination(1),
  );
}
