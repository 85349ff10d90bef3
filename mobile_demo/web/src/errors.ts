/** Why the port refuses a manifest, a bundle or an event: one typed error with a one-line reason. */
export class PortError extends Error {
  override name = "PortError";
}

/** A bundle file that is missing, modified, or not signed by the trusted key. */
export class BundleTrustError extends PortError {
  override name = "BundleTrustError";
}
