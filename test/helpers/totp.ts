import { generate } from 'otplib';

const PERIOD = 30;

/** The code an authenticator app shows for `secret`, `offset` 30-second steps from now. */
export function codeAt(secret: string, offset = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset * PERIOD });
}

/**
 * Waits until at least `seconds` remain in the current 30-second step, so that a test using the codes of the
 * steps around now does not see them shift under it.
 */
export async function awaitSteadyStep(seconds = 4): Promise<void> {
  const left = PERIOD - ((Date.now() / 1000) % PERIOD);
  if (left < seconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 100));
}
