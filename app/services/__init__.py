"""Services: the business rules; plain values in, models or plain values out, AppError raised."""
