// Jest's default order runs the slowest suites first. The chaos suite runs last instead: it leaves
// hundreds of objects being garbage-collected behind it, load that would eat into the short phase
// timeouts other suites test with.
import Sequencer from '@jest/test-sequencer';

const LAST = ['chaos.test.ts'];
const rank = (test) => (LAST.some((name) => test.path.endsWith(`/${name}`)) ? 1 : 0);

export default class HeavySuitesLast extends Sequencer {
  sort(tests) {
    return [...super.sort(tests)].sort((a, b) => rank(a) - rank(b));
  }
}
