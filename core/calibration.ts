// Pixel-spacing calibration of a captured screen: from two points a known distance apart on the
// scanner's depth ruler, or from the DICOM Sequence of Ultrasound Regions (0018,6011).

/** One item of the DICOM Sequence of Ultrasound Regions, in the file's pixel coordinates. */
export interface UltrasoundRegion {
  /** Region Location Min/Max (0018,6018..601E): inclusive pixel bounds. */
  x0: number; y0: number; x1: number; y1: number;
  /** Region Spatial Format (0018,6012): 1 = 2D tissue image, 2 = M-mode, 3 = spectral, 4 = waveform, ... */
  spatialFormat: number;
  /** Region Data Type (0018,6014): 1 = tissue, 2 = colour flow, 3 = PW spectral, ... */
  dataType: number;
  /** Physical Units X/Y Direction (0018,6024/6026): 3 = cm, 4 = seconds, 0 = none, ... */
  unitsX: number; unitsY: number;
  /** Physical Delta X/Y (0018,602C/602E) in those units per pixel. */
  deltaX: number; deltaY: number;
  /** mm per pixel when the units are lengths (cm -> mm), else undefined. */
  mmPerPixelX?: number; mmPerPixelY?: number;
}

/** Converts a region's deltas to mm per pixel when its units are centimetres (code 3). */
export function regionSpacingMm(r: Pick<UltrasoundRegion, 'unitsX' | 'unitsY' | 'deltaX' | 'deltaY'>): { x?: number; y?: number } {
  const cm = 3;
  return {
    x: r.unitsX === cm && r.deltaX > 0 ? r.deltaX * 10 : undefined,
    y: r.unitsY === cm && r.deltaY > 0 ? r.deltaY * 10 : undefined,
  };
}
