import { describe, expect, it } from '@jest/globals';
import { RESTORE_PHASES } from '../../../src/api/crds.js';
import type { RestorePhase } from '../../../src/api/generated/types.js';
import {
  canTransition,
  HAPPY_PATH,
  isActive,
  isTerminal,
  nextPhase,
} from '../../../src/controllers/restore/transitions.js';

const EXPECTED_HAPPY_PATH: readonly RestorePhase[] = [
  'Initializing',
  'Pending',
  'RestoringCloudSnap',
  'RestoringDataServiceDeploymentCR',
  'RestoringDataServiceDeployment',
  'DataServiceDeploymentEnteringNormalMode',
  'Successful',
];

const TERMINAL: readonly RestorePhase[] = ['Successful', 'Failed'];

/** The specification of the phase machine, written independently of the implementation. */
function allowed(from: RestorePhase, to: RestorePhase): boolean {
  if (TERMINAL.includes(from)) return false;
  if (to === 'Failed') return true;
  return EXPECTED_HAPPY_PATH.indexOf(to) === EXPECTED_HAPPY_PATH.indexOf(from) + 1;
}

const allPairs = RESTORE_PHASES.flatMap((from) =>
  RESTORE_PHASES.map((to) => ({ from, to, expected: allowed(from, to) })),
);

describe('restore phase transitions', () => {
  it('the happy path is every phase but Failed, in the documented order', () => {
    expect(HAPPY_PATH).toEqual(EXPECTED_HAPPY_PATH);
  });

  it.each(allPairs)('$from -> $to allowed: $expected', ({ from, to, expected }) => {
    expect(canTransition(from, to)).toBe(expected);
  });

  it('allows exactly one forward step plus Failed from each non-terminal phase', () => {
    for (const from of RESTORE_PHASES) {
      const targets = RESTORE_PHASES.filter((to) => canTransition(from, to));
      if (TERMINAL.includes(from)) expect(targets).toEqual([]);
      else expect(targets).toEqual([nextPhase(from), 'Failed']);
    }
  });

  it('never allows staying in a phase or going backwards', () => {
    for (const [i, from] of EXPECTED_HAPPY_PATH.entries()) {
      for (const to of EXPECTED_HAPPY_PATH.slice(0, i + 1)) {
        expect({ from, to, allowed: canTransition(from, to) }).toEqual({ from, to, allowed: false });
      }
    }
  });
});

describe('nextPhase', () => {
  it.each(EXPECTED_HAPPY_PATH.slice(0, -1).map((phase, i) => [phase, EXPECTED_HAPPY_PATH[i + 1]] as const))(
    '%s -> %s',
    (phase, next) => {
      expect(nextPhase(phase)).toBe(next);
    },
  );

  it.each(TERMINAL)('has no next phase after %s', (phase) => {
    expect(nextPhase(phase)).toBeUndefined();
  });
});

describe('isTerminal and isActive', () => {
  const table: { phase: RestorePhase | undefined; terminal: boolean; active: boolean }[] = [
    { phase: undefined, terminal: false, active: false },
    { phase: 'Initializing', terminal: false, active: false },
    { phase: 'Pending', terminal: false, active: false },
    { phase: 'RestoringCloudSnap', terminal: false, active: true },
    { phase: 'RestoringDataServiceDeploymentCR', terminal: false, active: true },
    { phase: 'RestoringDataServiceDeployment', terminal: false, active: true },
    { phase: 'DataServiceDeploymentEnteringNormalMode', terminal: false, active: true },
    { phase: 'Successful', terminal: true, active: false },
    { phase: 'Failed', terminal: true, active: false },
  ];

  it('covers every phase', () => {
    expect(table.map((row) => row.phase).filter((p) => p !== undefined)).toEqual([...RESTORE_PHASES]);
  });

  it.each(table)('$phase: terminal $terminal, active $active', ({ phase, terminal, active }) => {
    expect({ terminal: isTerminal(phase), active: isActive(phase) }).toEqual({ terminal, active });
  });
});
