cwlVersion: v1.2
class: Workflow
label: All-sky cutouts and mosaic
doc: |
  Cuts one square out of an all-sky map for every target (in parallel),
  each with a preview and statistics, then lays them side by side.
requirements:
  ScatterFeatureRequirement: {}
  StepInputExpressionRequirement: {}
  SchemaDefRequirement:
    types:
      - name: target
        type: record
        fields:
          name:
            type: string
            doc: A name for the files (letters, digits, '-' and '_')
          glon:
            type: double
            doc: Galactic longitude of the centre, in degrees
          glat:
            type: double
            doc: Galactic latitude of the centre, in degrees
      - name: stretch
        type: enum
        symbols: [linear, sqrt, log]
inputs:
  map:
    type: File
    label: All-sky map
    doc: A FITS image in a CAR projection, e.g. /media/data/allsky-survey/allsky_skysim_car.fits
  targets:
    type: target[]
    label: Targets
    default:
      - {name: galactic-centre, glon: 0.0, glat: 0.0}
      - {name: cygnus, glon: 80.0, glat: 1.0}
      - {name: anticentre, glon: 180.0, glat: 0.0}
      - {name: dipole, glon: 264.0, glat: 48.0}
  size:
    type: double
    default: 20.0
    label: Width of each cutout, in degrees
  stretch:
    type: stretch
    default: sqrt
    label: Brightness scale of the previews
outputs:
  cutouts:
    type: File[]
    label: One FITS image per target
    outputSource: cut/image
  previews:
    type: File[]
    label: Their previews (PNG)
    outputSource: cut/preview
  statistics:
    type: File[]
    label: Their positions and statistics (JSON)
    outputSource: cut/statistics
  mosaic:
    type: File
    label: Every cutout side by side (PNG)
    outputSource: lay_out/mosaic
steps:
  cut:
    run: cutout.cwl
    scatter: target
    in:
      map: map
      target: targets
      size: size
      stretch: stretch
    out: [image, preview, statistics]
  lay_out:
    run: mosaic.cwl
    in:
      cutouts: cut/image
      stretch: stretch
    out: [mosaic]
