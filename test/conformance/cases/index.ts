/** Every conformance case, by theme. */
import type { ConformanceCase } from '../case.js';
import { addPermCases } from './add-perms.js';
import { argStageCases } from './args-stages.js';
import { configCases } from './config.js';
import { copyCases } from './copy.js';
import { runHeredocCases } from './run-heredoc.js';

export const allCases: ConformanceCase[] = [...copyCases, ...configCases, ...argStageCases, ...addPermCases, ...runHeredocCases];
