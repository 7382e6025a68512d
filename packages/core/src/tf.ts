// tfjs-core by itself registers no gradient functions and no chained tensor methods; the
// @tensorflow/tfjs union package registers both (into the engine's global registries) as a
// side effect. Every module of selfalign takes `tf` from here so that both are in place.
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

export { tf };
