// Imported first by main.tsx: zod builds faster validators with `new Function` unless told not
// to, and probes for it when each object schema is defined. The page's CSP forbids eval, so the
// probe alone would raise a CSP violation on every load; jitless mode never tries.
import { z } from 'zod';

z.config({ jitless: true });
