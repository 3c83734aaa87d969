## fuzz targets
