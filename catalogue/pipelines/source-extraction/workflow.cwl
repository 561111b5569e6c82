cwlVersion: v1.2
class: Workflow
label: Source extraction and photometry
doc: |
  Finds and measures the point sources of every image (in parallel), then
  merges their catalogues and, given a reference catalogue, cross-matches
  each field with it.
requirements:
  ScatterFeatureRequirement: {}
inputs:
  images:
    type: File[]
    label: Images
    doc: FITS images with a celestial WCS, e.g. /media/data/deep-fields/skysim_m31_g.fits
  threshold:
    type: double
    default: 5.0
    label: Detection threshold, in sigma of the local noise
  aperture:
    type: double
    default: 1.5
    label: Aperture radius, in FWHM of the PSF
  min_separation:
    type: int
    default: 4
    label: Smallest distance between two sources, in pixels
  truth:
    type: File?
    label: Reference catalogue
    doc: A FITS table with FIELD, RA, DEC and MAG_G columns, e.g. /media/data/source-catalogue/deepfields_sources.fits
  match_radius:
    type: double
    default: 1.5
    label: Cross-match radius, in arcsec
outputs:
  catalogues:
    type: File[]
    label: One catalogue per image (FITS table)
    outputSource: extract/catalogue
  sources:
    type: File
    label: Every source of every image (FITS table)
    outputSource: merge/sources
  sources_csv:
    type: File
    label: The same, as CSV
    outputSource: merge/sources_csv
  report:
    type: File
    label: Counts and, with a reference catalogue, the cross-match (JSON)
    outputSource: merge/report
steps:
  extract:
    run: extract.cwl
    scatter: image
    in:
      image: images
      threshold: threshold
      aperture: aperture
      min_separation: min_separation
    out: [catalogue, table]
  merge:
    run: compare.cwl
    in:
      catalogues: extract/catalogue
      truth: truth
      radius: match_radius
    out: [sources, sources_csv, report]
