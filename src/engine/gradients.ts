/**
 * tfjs-core's CommonJS build registers no gradient functions; the union package
 * `@tensorflow/tfjs` registers them on the shared tfjs-core instance (tfjs-node does the same).
 * Training and the straight-through estimator import this module for that side effect.
 */
import '@tensorflow/tfjs';
