/**
 * The two variables through which a session hands its control channel to the child
 * (docs/build-cache.md). build-img-with-proxy reads them; it never passes them into a RUN.
 */
export const CONTROL_URL_VAR = 'HTVEND_CONTROL_URL';
export const SESSION_SECRET_VAR = 'HTVEND_SESSION_SECRET';

export function sessionOverrides(session: { secret: string; controlUrl: string }): Array<[string, string]> {
  return [
    [CONTROL_URL_VAR, session.controlUrl],
    [SESSION_SECRET_VAR, session.secret],
  ];
}
