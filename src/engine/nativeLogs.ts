/** Process set-up for TensorFlow's native logging; free of tfjs so the host side (client, CLI) can call it without loading tfjs. */

/** TensorFlow's C++ logging (oneDNN notices) reads this at start-up: keep info lines quiet. */
export function quietNativeLogs(): void {
  if (process.env.TF_CPP_MIN_LOG_LEVEL === undefined) process.env.TF_CPP_MIN_LOG_LEVEL = '2';
}
