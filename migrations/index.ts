// The ordered list of migrations; names sort in the order they run.
import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.ts';
import * as m0002 from './0002_rooms.ts';
import * as m0003 from './0003_expiry.ts';

export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_rooms': m0002,
  '0003_expiry': m0003,
};
