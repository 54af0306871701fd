// A restore step's outcome: the shared advance / wait / fail over the Restore's phases, error codes
// and status fields.

import type { RestoreErrorCode, RestorePhase, RestoreStatus } from '../../api/generated/types.js';
import type { Outcome } from '../shared/outcome.js';

export { advance, fail, wait } from '../shared/outcome.js';

export type StatusUpdate = Partial<Omit<RestoreStatus, 'phase' | 'conditions' | 'phaseHistory'>>;

export type StepOutcome = Outcome<RestorePhase, RestoreErrorCode, StatusUpdate>;
