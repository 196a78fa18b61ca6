/**
 * The enrolment's `otpauth://` URI as an SVG QR code, for an authenticator app's camera. The QR library is loaded
 * at the first enrolment, not at every start.
 */
export async function qrCodeSvg(uri: string): Promise<string> {
  const { default: QRCode } = await import('qrcode');
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}
