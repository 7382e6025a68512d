// Which parameters are the prefix's (the vision tower and the VLM): what `frozenPrefix` holds
// still, and what tells align-aware pretraining that a cached prefix serves every pass.

import { pathMatcher } from '@selfalign/core';

/** The prefix's parameters: what `frozenPrefix` holds still. */
export const PREFIX_PARAMS = ['vision/**', 'vlm/**'] as const;

/** Whether a parameter path is the prefix's (`PREFIX_PARAMS`). */
export const isPrefixParam = pathMatcher(PREFIX_PARAMS);
