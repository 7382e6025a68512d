// How the CLI names the alignment tasks: the design's three, then the extra (blind) tasks a
// policy may have, in the order of the policy's tasks.

/** In full, as the align log line and the HTML report write them (key order = column order). */
export const TASK_TITLE: Readonly<Record<string, string>> = Object.freeze({
  perception: 'perception',
  dynamics: 'dynamics',
  inverseDynamics: 'inverse dynamics',
  stateDynamics: 'state dynamics',
  kinematics: 'kinematics',
});

/** Short, as the demo's and diagnose's markdown tables head them. */
export const TASK_SHORT_TITLE: Readonly<Record<string, string>> = Object.freeze({
  perception: 'perception',
  dynamics: 'dynamics',
  inverseDynamics: 'inverse dyn.',
  stateDynamics: 'state dyn.',
  kinematics: 'kinematics',
});
