-- A second database beside ledgersync's state store, for the example app (or point
-- APP_DATABASE_URL at your own app's database instead).
CREATE DATABASE app OWNER ledgersync;
