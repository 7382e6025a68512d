// The demo report's held-out table: a column per alignment task the policy has (the
// state-dynamics task only where the policy has it), before -> after per parametrisation.
import { describe, expect, it } from 'vitest';
import { type ReportTarget, renderReport } from '../src/report.js';

const target = (withSdyn: boolean): ReportTarget => {
  const losses = (x: number) => ({
    perception: x,
    dynamics: x / 2,
    inverseDynamics: x / 4,
    ...(withSdyn ? { stateDynamics: x / 8 } : {}),
  });
  return {
    name: 'sign',
    description: 'joints 1, 2 turn the other way',
    successBefore: 0,
    successAfter: { span: 0.5 },
    curves: {},
    heldOut: { span: { before: losses(1), after: losses(0.5) } },
    wallS: { span: 37.1 },
  };
};
const render = (withSdyn: boolean) =>
  renderReport({ title: 't', policy: 'p', machine: 'm', targets: [target(withSdyn)], totalS: 1 });

describe('the demo report', () => {
  it('has a held-out column for every task the policy has', () => {
    const three = render(false);
    expect(three).toContain('<th>inverse dynamics</th><th>align wall time</th>');
    expect(three).not.toContain('state dynamics');
    const four = render(true);
    expect(four).toContain(
      '<th>inverse dynamics</th><th>state dynamics</th><th>align wall time</th>',
    );
    expect(four).toContain('<td>0.125 &rarr; 0.063</td><td>37.1 s</td>');
  });
});
