/**
 * A per-model circuit breaker: closed -> open after `failures` consecutive failures -> half-open once
 * `cooldownMs` has passed (one trial call) -> closed on success, open again on failure.
 * The clock is injectable so tests can step time.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failures: number;
  cooldownMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private readonly now: () => number;

  constructor(private readonly options: BreakerOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** The current state, moving open -> half-open when the cool-down has passed. */
  get state(): BreakerState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.options.cooldownMs) this.stateValue = 'half-open';
    return this.stateValue;
  }

  /** Whether a call may go through now. In half-open, only one trial call at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'half-open' && !this.trialInFlight) {
      this.trialInFlight = true;
      return true;
    }
    return false;
  }

  onSuccess(): void {
    this.consecutiveFailures = 0;
    this.trialInFlight = false;
    this.stateValue = 'closed';
  }

  /** The call was abandoned by its caller (a deadline): no verdict on the model; frees a half-open trial. */
  onAbandoned(): void {
    this.trialInFlight = false;
  }

  onFailure(): void {
    this.trialInFlight = false;
    this.consecutiveFailures++;
    if (this.stateValue === 'half-open' || this.consecutiveFailures >= this.options.failures) {
      this.stateValue = 'open';
      this.openedAt = this.now();
    }
  }
}
